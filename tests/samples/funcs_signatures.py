"""Function entrypoints with other signatures: one without the context, one behind a decorator."""
import functools

import launcher


def no_context():
    """``def main():`` is called with nothing; it forms its process group itself."""
    ctx = launcher.init()
    ctx.barrier()
    print(f"no context: rank {ctx.rank} of {ctx.world_size}")


def _logged(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs)
    return inner


@_logged
def decorated(ctx, epochs=3):
    """Preflight cannot read a decorated signature: the worker checks the arguments before the call."""
    print(f"decorated: {epochs} epochs")
