"""The Green Low-Carbon Enterprise Alliance (绿色低碳企业联盟): applications, membership and its
history, the operator's terms for members (member discount, first call on new listings), and
the public pages of the members and their retired tonnes."""
