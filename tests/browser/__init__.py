"""Tests that load the appliance's pages in a real headless browser."""
