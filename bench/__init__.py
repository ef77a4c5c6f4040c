"""Side-by-side benchmarks against MLflow: ``python -m bench [name ...]``.

Each ``bench/<name>.py`` (not starting with ``_``) has a ``main()``; shared
helpers are in :mod:`bench._util`. See ``bench/README.md``.
"""
