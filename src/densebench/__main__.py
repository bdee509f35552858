"""`python -m densebench` is the same as the `densebench` console script."""

from densebench.cli import main

if __name__ == "__main__":
    main()
