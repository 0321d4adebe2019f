"""REST API of CINR (Django REST framework): datasets, INR sets, runs, encoders and the model API."""
