"""The berthcache policy pack: Security Hub ElastiCache.1-7 plus the kit's own rules."""
