import multiprocessing

if __name__ == "__main__":
    p = multiprocessing.Process(target=lambda: print("hi"))  # <- pickle
    p.start()
    p.join()
