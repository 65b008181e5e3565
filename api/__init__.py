"""The Pairscope registry service: settings, persistence, storage, auth and REST routes.

Never imports `worker` or TensorFlow: the API process stays small and starts fast.
"""
