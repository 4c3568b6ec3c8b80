"""The shared kernel: what every app builds on and nothing of ours is built under.

errors (the refusals and their codes), money, numbering, transition tables and the save()
guard, who is acting and why, the one way to write a service, domain events for the reaction
table, after-commit enqueue, and the API and admin helpers every door uses. It imports Django,
DRF and Celery, never a module of this project outside `emr.kernel`.
"""
