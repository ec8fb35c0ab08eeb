"""Student data deletion (pure): requests, the deletion plan, the deny-list, receipts."""
