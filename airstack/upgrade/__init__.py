"""``nox -s upgrade -- TARGET``: rehearse an Airflow, provider or chart upgrade before it merges (issue 18).

Pure parts: :mod:`.args` (the arguments), :mod:`.locks` (lock parsing, the package diff, the pin
edit, the compile command ``nox -s lock`` shares), :mod:`.dagresults` (the DAG lane's results per
file), :mod:`.deployed` (each environment's chart values and Airflow config), :mod:`.chart` (the
values against a chart release's schema), :mod:`.report` (model, Markdown, JSON, table). Side
effects: :mod:`.steps` (every subprocess, through airstack.proc). :mod:`.rehearse` runs them in order.
"""
