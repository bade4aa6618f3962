"""Tests of the signoff command line."""
