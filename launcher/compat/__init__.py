"""Every use of a dependency's private internals, one module per dependency, each with a ``probe()``.

``mp``: CPython's multiprocessing, forkserver and atexit internals (standard
library only, so the launcher can probe them before it plans). ``elastic``:
torch.distributed.elastic's private attributes (imports torch; probed by the
agent). Nothing else in the launcher touches a private name of either.
"""
