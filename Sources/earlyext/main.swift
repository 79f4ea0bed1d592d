import EarlyextCore
print("earlyext")
