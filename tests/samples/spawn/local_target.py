import torch.multiprocessing as mp


def main():
    def work(rank):
        print(rank)

    mp.spawn(work, nprocs=2)  # <- pickle


if __name__ == "__main__":
    main()
