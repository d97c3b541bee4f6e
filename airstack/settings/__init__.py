"""Settings as code: sops-encrypted ``settings/<env>/secret.yaml``, validated, imported, rendered.

- :mod:`.schema`: the file format (pydantic) and its one-line-per-problem errors;
- :mod:`.values`: strict JSON, values that would not reach Airflow unchanged, single-value checks (pure);
- :mod:`.deploy_file`: ``settings/<env>/deploy.yaml`` (plaintext), its one reader: images' registry,
  the local env's options, deploys, and which environments are ``protected``;
- :mod:`.sops`: the ``sops`` binary (argv lists, plaintext only on pipes) and its errors;
- :mod:`.store`: environments on disk, plaintext ids read without decrypting, atomic writes;
- :mod:`.keys`: age identities, Fernet/API/JWT keys and Fernet rotation;
- :mod:`.plan`: what applying would add, change or remove (pure);
- :mod:`.importer`: the one-transaction import through Airflow's ORM;
- :mod:`.parity`: connection ids, variables and images that DAGs use, per environment;
- :mod:`.render`: Kubernetes Secrets for the official chart, to stdout;
- :mod:`.drift`: the file against a running Airflow's REST API;
- :mod:`.main`: ``python -m airstack.settings`` (the ``settings-*`` nox sessions).
"""
