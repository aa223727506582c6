"""API: districts and their municipalities (only the caller's districts)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from core.api import require_token
from core.database import load_or_404
from subscribers import services
from subscribers.models import District
from subscribers.schemas import DistrictSchema, MunicipalitySchema

blp = Blueprint("districts_api", __name__, url_prefix="/api/v1", description="Kreise und Gemeinden")
blp.before_request(require_token)


@blp.route("/districts")
class Districts(MethodView):
    @blp.response(200, DistrictSchema(many=True))
    def get(self):
        """Die Kreise, die der Aufrufer sehen darf."""
        return services.districts_with_counts()


@blp.route("/districts/<string:key>/municipalities")
class Municipalities(MethodView):
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.response(200, MunicipalitySchema(many=True))
    def get(self, key):
        """Die Gemeinden eines Kreises."""
        district = load_or_404(District, key=key)
        return district.municipalities
