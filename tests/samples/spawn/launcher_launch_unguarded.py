import launcher


def train(ctx):
    pass


launcher.launch(train, nprocs=2)  # <- main-guard
