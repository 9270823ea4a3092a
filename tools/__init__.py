"""Thin command-line front ends: parse arguments, call library code, print results."""
