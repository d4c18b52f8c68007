from multiprocessing import Pool


def square(x):
    return x * x


with Pool(2) as pool:  # <- main-guard
    print(pool.map(square, range(4)))
