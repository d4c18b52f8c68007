def main():
    print("ok")


def broken(:  # <- target
    pass
