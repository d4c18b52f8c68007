import multiprocessing
import multiprocessing.pool


def square(x):
    return x * x


multiprocessing.set_start_method("spawn")
pool = multiprocessing.pool.Pool(2)  # <- main-guard
print(pool.map(square, range(4)))
