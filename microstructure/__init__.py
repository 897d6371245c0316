"""Statistics of grain-boundary images, and the image conversions every part shares.

No TensorFlow here: training's evaluation and the service both import this package.
"""
