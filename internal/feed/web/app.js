// demo page script
