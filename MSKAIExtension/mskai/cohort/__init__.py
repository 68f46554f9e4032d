"""Cohorts: ``mskai batch COHORT.csv --out DIR`` runs one mskai command per CSV row on Dask.

- :mod:`.cohort_csv` reads and checks the cohort table (one line, exit 2, before any work).
- :mod:`.case_runner` runs one case on a worker through the single-case command handlers.
- :mod:`.fingerprint` and :mod:`.completion` decide whether a case is already done.
- :mod:`.model_cache` loads each model once per worker process.
- :mod:`.cluster` starts a LocalCluster or joins a running scheduler.
- :mod:`.progress`, :mod:`.cohort_table` and :mod:`.index_page` report the cohort.
- :mod:`.batch` puts it together and chooses the exit code.
"""
