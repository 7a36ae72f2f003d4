"""Stage 1, hosts.

Which hosts to check (targets, --hosts specs, Ansible inventories) and how to reach them (SSH,
paramiko, WinRM), with the secrets they carry.
"""
