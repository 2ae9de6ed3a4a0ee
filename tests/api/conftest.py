from tests.servicing.test_api import book  # noqa: F401  (fixture: the sample products and an open business date)
