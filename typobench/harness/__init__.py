"""The harness: one evaluation path under every command.

``Session`` holds what a run loads once (runtime, model, data, head, classifier, cache) and runs any
list of stages over the data with resume; ``results`` writes the one result envelope every command
records; ``run`` is ``typobench run`` as a library function.
"""
