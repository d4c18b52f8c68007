raise RuntimeError("pkg_heavy/__init__.py was executed: the preflight must not import packages")
