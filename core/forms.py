"""Form plumbing shared by the pages of every package.

Every form derives from `Form`. Flask-WTF's own base feeds a form with
`request.files` merged into `request.form`, and with a JSON body as it comes:
a file or a number posted where a text is expected reached the field and
failed in its validators (`FileStorage has no len()`: a 500). `Form` gives each
text field only the text of `request.form`, and only a file field the files
posted under its name; a JSON body is not form input at all.
"""
from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms.fields import FileField as _WTFormsFileField


class Form(FlaskForm):
    """FlaskForm that reads text fields from `request.form` only."""

    class Meta:
        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            if not _is_submitted():
                return None
            file_fields = {field.name for field in form if isinstance(field, _WTFormsFileField)}
            files = MultiDict(
                (name, storage) for name, storage in request.files.items(multi=True) if name in file_fields
            )
            if files:
                return CombinedMultiDict((files, request.form))
            return request.form or None  # as Flask-WTF: nothing posted leaves the fields' own data


def show_error(form, error):
    """Show a service's error at the field it names (`error.field`), else above the form."""
    field = getattr(error, "field", None)
    if field and field in form:
        form[field].errors = [*form[field].errors, str(error)]
    else:
        form.form_errors.append(str(error))
