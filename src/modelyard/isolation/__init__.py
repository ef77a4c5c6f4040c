"""Models run in their own environments, built with uv from their requirements.

- :mod:`modelyard.isolation.envs`: the environment of a model (python version +
  requirements), built once into a cache keyed by their hash;
- :mod:`modelyard.isolation.isolated`: :class:`IsolatedModel`, a model loaded in a
  child process of that environment, with the same ``predict`` as :class:`Model`;
- ``_wire`` and ``_worker``: the messages over the pipe and the child's side of it.

``modelyard predict --env uv``, ``modelyard serve --env uv`` and the Spark UDF's
``env="uv"`` all go through here. Nothing heavy is imported by this package.
"""
