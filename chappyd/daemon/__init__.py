"""The prefork master and the modules only it (or its forked children, before they
become workers) use. Everything here runs in the master process, except child.py,
which is the forked child's set-up and its reporting back to the master."""
