"""Images: the Airflow runtime image and worker images under ``images/<name>/``.

- :mod:`.spec`: what an image folder holds (flavour, base, extra context), the pin lint,
  and the generated Dockerfiles of the conda and pip flavours (pure);
- :mod:`.context`: the build context as a deterministic tar, honouring ``.dockerignore``,
  and the content-addressed tag (pure);
- :mod:`.builder`: building and pushing with the Docker SDK (the only I/O here);
- :mod:`.manifest`: name -> reference, read by DAGs, the local env and deploys;
- :mod:`.api`: typed functions (select, plan, build and push, digests, promote) that the CLI and
  deploys call; the registry is an argument;
- :mod:`.main`: ``python -m airstack.images`` (``build-images``, ``push-images``, ``images``): arguments only.
"""
