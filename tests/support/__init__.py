"""Helpers the tests share: fake servers for X, real PostgreSQL and Redis servers, a browser, test data."""
