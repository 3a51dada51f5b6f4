# The toolbox's own test failure (esa_climate_toolbox/util/reporting.py):
# raise_error() raises exactly the exception the real toolbox raises.


class FailureReporter:
    @staticmethod
    def raise_error():
        raise Exception("This is an error to test the reporting functionality.")
