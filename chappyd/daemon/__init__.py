"""The prefork master and what only it uses; every module here runs in the master."""
