"""Device side of the Early-Bird energy suite: models, data, the train loop, Early-Bird detection,
channel pruning, the methods and the runner. Python >= 3.6, torch >= 1.8, torchvision, numpy only."""
