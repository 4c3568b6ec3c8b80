from django.urls import path

from emr.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.SignInView.as_view(), name="sign-in"),
    path("logout/", views.SignOutView.as_view(), name="sign-out"),
    path("password-reset/", views.request_password_reset, name="request-password-reset"),
    path("password-reset/sent/", views.password_reset_sent, name="password-reset-sent"),
    path("reset/<uidb64>/<token>/", views.ResetPasswordView.as_view(), name="reset-password"),
    path("welcome/<uidb64>/<token>/", views.AcceptInviteView.as_view(), name="accept-invite"),
    path("orders/", views.orders, name="orders"),
    path("orders/<str:number>/", views.order, name="order"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<str:number>/", views.invoice, name="invoice"),
    path("invoices/<str:number>/pay/", views.pay_invoice, name="pay-invoice"),
    path("packages/", views.packages, name="packages"),
    path("packages/<int:package_id>/", views.package, name="package"),
    path("cards/", views.cards_page, name="cards"),
    path("cards/<int:card_id>/", views.card, name="card"),
    path("cards/<int:card_id>/default/", views.make_default_card, name="card-default"),
    path("cards/<int:card_id>/remove/", views.remove_card, name="card-remove"),
    path("messages/", views.messages_page, name="messages"),
    path("documents/", views.documents_page, name="documents"),
    path("documents/<int:template_id>/sign/", views.sign_document, name="sign-document"),
    path("documents/signed/<int:signed_id>/", views.signed_document, name="signed-document"),
    path(
        "documents/signed/<int:signed_id>/pdf/",
        views.signed_document_pdf,
        name="signed-document-pdf",
    ),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("subscriptions/<str:number>/", views.subscription, name="subscription"),
    path(
        "subscriptions/<str:number>/<slug:change>/",
        views.subscription_change,
        name="subscription-change",
    ),
]
