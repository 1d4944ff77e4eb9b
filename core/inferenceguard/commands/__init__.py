"""Small CLI verbs that belong to no larger subsystem."""
