"""What the tests, the benchmarks and the scripts share to run the service for real:
PostgreSQL found or started (postgres.py), the service and the simulator as processes
(processes.py), bulk orders (bulk.py). Not part of the shipped package."""
