"""Deploys: ``python -m airstack.deploy plan|deploy|destroy ENV`` (``nox -s deploy-*``, ``destroy``).

- :mod:`.main`: the command line only: argv -> one frozen request (:mod:`.request`), then the library call;
- :mod:`.deployer`: :class:`~.deployer.Deployer`, the order of a deploy (checks, images, stacks, snapshot, DAG
  bundle, charts, record); :mod:`.destroy`: ``destroy`` (an environment, a preview, the merged previews);
- :mod:`.config`: what deploys check of ``settings/<env>/deploy.yaml`` beyond the file
  (:mod:`airstack.settings.deploy_file` reads it), and preview names;
- :mod:`.guards`: what must hold before a protected environment changes;
- :mod:`.shipping`: the images a deploy ships (built and pushed, or promoted by digest), each resolved to its
  digest before any change, and its release record; :mod:`.preflight`: the plan's checks (passed, failed,
  could not run);
- :mod:`.release`: release records (what a deploy shipped), promotion checks, the difference of two records;
- :mod:`.cloudformation`: stacks through change sets (a package: templates, changesets, report, errors, stacks);
- :mod:`.target`: where an environment's releases go; :mod:`.chart_values`: both releases' stdin values (pure);
  :mod:`.auth_policy`: FAB, never SimpleAuthManager (pure); :mod:`.masking`: Secret values in manifests, masked;
- :mod:`.helm_binary`: the ``helm`` binary through :mod:`airstack.proc`, and its argv;
- :mod:`.dagdeploy`: ``deploy ENV --dags`` and the DAG bundle step of a full deploy (the bundle
  itself, GitDagBundle on a per-environment deploy ref, shared with the local env: :mod:`airstack.git_bundle`);
  :mod:`.dag_bundles`: what deploys alone do with the bundle (record entry, DAG-only check, a preview's ref);
- :mod:`.previews`: which previews outlived their branch; :mod:`.preview_access`,
  :mod:`.pod_identity`: a preview's AWS access (EKS Pod Identity);
- :mod:`.aws`: the one boto3 client factory;
- :mod:`.replay`: ``nox -s ci``'s deploys against the stand-ins of :mod:`airstack.standins`.
"""
