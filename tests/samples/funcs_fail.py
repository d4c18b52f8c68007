"""A function entrypoint that fails on rank 1."""


def explode_on_one(ctx):
    if ctx.rank == 1:
        raise KeyError("missing shard on rank one")
    ctx.barrier()
