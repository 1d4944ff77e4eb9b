"""Tests of ``inferenceguard.scorers``, one file per module."""
