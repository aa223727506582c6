"""Form plumbing shared by the pages of every package."""


def show_error(form, error):
    """Show a service's error at the field it names (`error.field`), else above the form."""
    field = getattr(error, "field", None)
    if field and field in form:
        form[field].errors = [*form[field].errors, str(error)]
    else:
        form.form_errors.append(str(error))
