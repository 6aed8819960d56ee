"""Companies pages (the operator dashboard)."""
from flask import Blueprint, render_template
from sqlalchemy import select

from ..extensions import db
from ..models import Company

bp = Blueprint("companies", __name__)


@bp.get("/")
def index():
    companies = db.session.scalars(select(Company).order_by(Company.name)).all()
    return render_template("companies/index.html", companies=companies)
