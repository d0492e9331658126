"""Quality: the great-expectations gate, dataset statistics, the HTML report, the card and Hub push."""
