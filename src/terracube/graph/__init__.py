"""Process graphs: parse (model.py), validate, plan (pushdown), fuse, evaluate lazily.

Nothing is imported here: a module that needs only the graph model (the stores of user-defined
processes, the CLI) must not pay for the process library that evaluation loads.
"""
