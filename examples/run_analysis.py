"""A toolbox job that fails inside the toolbox, as `ect-run -- python
run_analysis.py` would supervise it. It calls the toolbox's own test
failure, FailureReporter.raise_error(), the way the toolbox's page on
failure reporting does."""
from esa_climate_toolbox.util.reporting import FailureReporter


def main():
    print("analysing...")
    FailureReporter.raise_error()


if __name__ == "__main__":
    main()
