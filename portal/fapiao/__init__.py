"""VAT fapiao (增值税发票) requests: a buyer asks for one for a paid order or a paid contract
invoice; staff issue it (number, date, the e-fapiao PDF) or reject it; the buyer downloads it."""
