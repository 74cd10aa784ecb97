/// An event type the CRM publishes, with a description for the dashboard and a sample
/// payload that test deliveries send.
public struct CatalogEntry: Sendable, Equatable {
    public let type: String
    public let description: String
    /// A JSON object.
    public let sample: String
}

/// The default catalog: the seventeen CreatorDesk events. Other well-formed types are
/// accepted too; the catalog is what tenants pick from and what test events use.
public enum Catalog {
    public static func entry(_ type: String) -> CatalogEntry? {
        entries.first { $0.type == type }
    }

    /// The erasure notice: delivered to every enabled endpoint of the tenant, whatever
    /// its selection, so receivers can delete their copy of the person.
    public static let erasureType = "client.deleted"

    public static let entries: [CatalogEntry] = [
        CatalogEntry(
            type: "client.created", description: "A contact was created in the CRM.",
            sample: #"""
                {"id": 42, "uuid": "8d3f2e4a-1c5b-4d6e-9a8b-7c5d4e3f2a1b", "email": "anna@example.com", "name": "Anna Beispiel", "first_name": "Anna", "last_name": "Beispiel", "company": null, "phone": "+49 123 456789", "tags": ["Hochzeit", "2026"], "project_count": 0, "source": "instagram", "client_number": "K-2026-0042", "created_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "client.updated", description: "Fields of a contact were changed.",
            sample: #"""
                {"id": 42, "uuid": "8d3f2e4a-1c5b-4d6e-9a8b-7c5d4e3f2a1b", "email": "anna@example.com", "name": "Anna Beispiel", "first_name": "Anna", "last_name": "Beispiel", "phone": "+49 123 456789", "changed_fields": ["phone"], "updated_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "client.deleted",
            description: "A contact was deleted (GDPR right to erasure: the receiver should delete its local copy).",
            sample: #"""
                {"id": 42, "uuid": "8d3f2e4a-1c5b-4d6e-9a8b-7c5d4e3f2a1b", "email": "anna@example.com", "deleted_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "booking.created", description: "A customer requested an appointment through the booking calendar (not yet confirmed).",
            sample: #"""
                {"id": 17, "customer_name": "Anna Beispiel", "email": "anna@example.com", "phone": "+49 123 456789", "slot_date": "2026-08-14", "slot_time_start": "10:00:00", "project_id": null, "quote_id": null, "booked_at": "2026-05-12T09:15:00Z"}
                """#),
        CatalogEntry(
            type: "booking.confirmed", description: "An appointment was confirmed.",
            sample: #"""
                {"id": 17, "customer_name": "Anna Beispiel", "email": "anna@example.com", "phone": "+49 123 456789", "slot_date": "2026-08-14", "slot_time_start": "10:00:00", "project_id": 38, "quote_id": null, "booked_at": "2026-05-12T09:15:00Z", "confirmed_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "project.created", description: "A new project was created in the CRM.",
            sample: #"""
                {"id": 38, "title": "Hochzeit Anna & Tobias", "status": "inquiry", "client_id": 42, "event_date": "2026-08-14", "created_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "project.status_changed", description: "The status of a project changed.",
            sample: #"""
                {"id": 38, "title": "Hochzeit Anna & Tobias", "client_id": 42, "old_status": "inquiry", "new_status": "booked", "changed_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "quote.created", description: "A new quote was created.",
            sample: #"""
                {"id": 23, "quote_number": "A-2026-0023", "title": "Hochzeit Anna & Tobias", "status": "draft", "total": "1450.00", "client_id": 42, "project_id": 38, "valid_until": "2026-06-12", "created_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "quote.accepted", description: "The customer accepted a quote.",
            sample: #"""
                {"id": 23, "quote_number": "A-2026-0023", "title": "Hochzeit Anna & Tobias", "status": "accepted", "total": "1450.00", "client_id": 42, "project_id": 38, "accepted_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "invoice.issued", description: "An invoice was sent to the customer.",
            sample: #"""
                {"id": 89, "invoice_number": "R-2026-0089", "title": "Hochzeit Anna & Tobias", "status": "sent", "total": "1450.00", "subtotal": "1218.49", "issue_date": "2026-05-01", "due_date": "2026-05-31", "client": {"id": 42, "email": "anna@example.com", "name": "Anna Beispiel"}, "project_id": 38, "quote_id": 23}
                """#),
        CatalogEntry(
            type: "invoice.paid", description: "An invoice was marked as paid.",
            sample: #"""
                {"id": 89, "invoice_number": "R-2026-0089", "title": "Hochzeit Anna & Tobias", "status": "paid", "total": "1450.00", "subtotal": "1218.49", "issue_date": "2026-05-01", "due_date": "2026-05-31", "paid_at": "2026-05-12T09:30:00Z", "client": {"id": 42, "email": "anna@example.com", "name": "Anna Beispiel", "first_name": "Anna", "last_name": "Beispiel"}, "project_id": 38, "quote_id": 23}
                """#),
        CatalogEntry(
            type: "contract.signed", description: "The customer signed a contract.",
            sample: #"""
                {"id": 12, "title": "Fotografievertrag Hochzeit", "client_id": 42, "project_id": 38, "signed_by": "Anna Beispiel", "signed_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "gallery.published", description: "A gallery was published.",
            sample: #"""
                {"id": 73, "uuid": "f6146aa2-0335-4af2-8c0f-cfcbb0f7d3d0", "title": "Hochzeit Anna & Tobias", "status": "published", "distribution_mode": "shop", "project_id": 38, "image_count": 342, "allow_sale": true, "published_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "gallery.delivered", description: "A gallery was delivered to the customer.",
            sample: #"""
                {"id": 73, "uuid": "f6146aa2-0335-4af2-8c0f-cfcbb0f7d3d0", "title": "Hochzeit Anna & Tobias", "project_id": 38, "image_count": 342, "delivered_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "order.paid", description: "An end customer paid a gallery order.",
            sample: #"""
                {"id": 156, "order_number": "GS-2026-00156", "gallery_id": 73, "customer_email": "anna@example.com", "customer_name": "Anna Beispiel", "total": "199.00", "payment_method": "stripe", "status": "paid", "items": [{"id": 412, "product_type": "digital_image_package", "quantity": 1, "unit_price": "199.00"}], "paid_at": "2026-05-12T09:30:00Z"}
                """#),
        CatalogEntry(
            type: "order.shipped", description: "A gallery order with print products was shipped.",
            sample: #"""
                {"id": 157, "order_number": "GS-2026-00157", "gallery_id": 73, "customer_email": "anna@example.com", "customer_name": "Anna Beispiel", "carrier": "DHL", "tracking_number": "00340434161234567890", "shipped_at": "2026-05-14T11:00:00Z"}
                """#),
        CatalogEntry(
            type: "form.submitted", description: "A public form was submitted; the payload holds every field.",
            sample: #"""
                {"submission_id": "sub_8f2a", "form": {"id": 5, "title": "Newsletter"}, "data": {"email": "anna@example.com", "vorname": "Anna", "nachname": "Beispiel", "interesse": "Hochzeit"}, "submitted_at": "2026-05-12T09:30:00Z"}
                """#),
    ]
}
