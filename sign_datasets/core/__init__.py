"""What cleaning is: records, rules and their accounting, plans, labels and images."""
