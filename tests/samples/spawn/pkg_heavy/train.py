def main():
    print("train")


if __name__ == "__main__":

    def only_when_run():
        pass
