"""Binds every .feature file in this directory; the steps live in features/steps/."""

from pytest_bdd import scenarios

scenarios(".")
