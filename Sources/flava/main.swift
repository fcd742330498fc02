print("flava")
