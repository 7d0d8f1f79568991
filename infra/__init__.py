"""The berthcache Pulumi program: an ElastiCache Redis 7 replication group with its alarms."""
