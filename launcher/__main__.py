"""``python -m launcher``: guarded, because spawn and forkserver children import it."""

if __name__ == "__main__":
    from launcher.cli.main import entry

    entry()
